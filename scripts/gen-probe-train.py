#!/usr/bin/env python3
"""Writes data/probe-train.csv, the reviews the hidden-state probe (src/label/probe.rs) is fitted on:
`python3 scripts/gen-probe-train.py > data/probe-train.csv`. Every text is written for this project (composed
from the parts below; none is copied from a data set): genuine reviews of many kinds of places, off-topic
posts, rants and remarks without a visit, ads; then a second set of short generic praise and complaints and
first-person visit stories, which the first set lacked (its genuine reviews all name a dish or product).
Deterministic (seeded)."""
# project-written training reviews for the relevance probe: composed from parts written for this purpose
import csv, random, sys
R = random.Random(17)
PLACES = [("Rosa's Kitchen","Mexican restaurant",["tacos","enchiladas","salsa","margaritas"]),
 ("Harbor View Hotel","Hotel",["room","bed","breakfast buffet","front desk","pool"]),
 ("Quick Fix Auto","Auto repair shop",["brake job","oil change","estimate","mechanic"]),
 ("Bright Smile Dental","Dentist",["cleaning","hygienist","filling","waiting room"]),
 ("Main Street Books","Book store",["selection","staff picks","reading nook","used section"]),
 ("Sakura Sushi","Japanese restaurant",["salmon nigiri","ramen","miso soup","rolls"]),
 ("Iron Temple Gym","Gym",["equipment","classes","locker room","trainers"]),
 ("Green Valley Market","Grocery store",["produce","deli counter","checkout","bakery section"]),
 ("City Museum of Art","Museum",["exhibits","gift shop","guided tour","sculpture garden"]),
 ("Paws & Claws Vet","Veterinarian",["vet","exam","vaccines","front desk"]),
 ("Sunset Cinema","Movie theater",["seats","popcorn","sound","screen"]),
 ("Blue Lagoon Water Park","Water park",["slides","lazy river","lifeguards","lockers"]),
 ("Orchard Mall","Shopping mall",["food court","parking garage","stores","restrooms"]),
 ("Golden Dragon","Chinese restaurant",["dumplings","fried rice","hot and sour soup","noodles"]),
 ("Peak Physical Therapy","Physical therapist",["therapist","exercises","schedule","treatment"]),
 ("Lakeside Campground","Campground",["campsites","showers","lake","fire pits"]),
 ("Metro Pharmacy","Pharmacy",["pharmacist","prescription","line","vaccines"]),
 ("Crown Barbers","Barber shop",["haircut","beard trim","barber","wait"]),
 ("Union Station Cafe","Cafe",["latte","croissant","pastries","espresso"]),
 ("Riverside Hostel","Hostel",["dorm","kitchen","lockers","common room"]),
 ("Speedy Car Wash","Car wash",["wash","vacuums","dryers","attendants"]),
 ("Northside Library","Library",["books","study rooms","librarians","computers"]),
 ("Spice Route","Indian restaurant",["butter chicken","naan","biryani","lassi"]),
 ("Westfield Bank","Bank",["teller","line","loan officer","ATM"]),
]
GOOD = ["was excellent","was better than expected","was fresh and tasty","was clean and well kept","was friendly and quick","was worth every penny","was really well done","was great"]
BAD = ["was a letdown","was dirty","took far too long","was overpriced","was rude and slow","was broken","was cold","was disappointing"]
OPEN = ["We stopped here on our road trip.","Came in on a Tuesday afternoon.","My second visit this month.","Went with my family last weekend.","Stayed two nights for a conference.","First time trying this place.","I have been coming here for years.","Dropped by after work.",""]
CLOSE = ["Would come back.","Not coming back.","Recommended.","Four stars overall.","Avoid if you can.","Great value.","Can't complain.","Still thinking about it.",""]
EXTRA = ["Parking was a pain.","Prices are fair for the area.","The place was packed but it moved quickly.","Staff remembered our names.","It was quiet and relaxing.","The manager apologized and gave us a discount.","Bathrooms could be cleaner.","Easy to find and close to the train station."]
def onreview(p):
    name,cat,things = p
    good = R.random()<0.65
    parts=[R.choice(OPEN)]
    t=R.choice(things); parts.append(f"The {t} {R.choice(GOOD if good else BAD)}.")
    for _ in range(R.randint(0,2)): parts.append(R.choice(EXTRA))
    if R.random()<0.4:
        t2=R.choice(things); parts.append(f"The {t2} {R.choice(GOOD if R.random()<0.7 else BAD)} too.")
    parts.append(R.choice(CLOSE))
    return " ".join(x for x in parts if x)
OFF = [
 "Just finished my first marathon, legs are dead but I am so happy.",
 "Anyone else think the new phone update drains the battery way faster?",
 "My cat knocked a glass off the table again this morning.",
 "Reminder to everyone to drink water and call your mom.",
 "The election results this year were a joke, nobody cares about working people.",
 "Learning to bake sourdough, my starter finally bubbled today.",
 "Can someone recommend a good book about ancient Rome?",
 "It has rained every single day this week, I miss the sun.",
 "Happy birthday to my little brother, twenty one today!",
 "I am practicing my guitar scales every night before bed.",
 "The football game last night was unbelievable, what a comeback.",
 "Looking for a roommate near downtown, message me if interested.",
 "Testing, testing, is this thing working?",
 "My grandmother's recipe for apple pie uses a pinch of nutmeg.",
 "Traffic on the highway was terrible this morning because of an accident.",
 "I think pineapple on pizza is underrated and I will die on this hill.",
 "Does anyone know when the new season of that show comes out?",
 "Went hiking in the mountains last summer, best trip of my life.",
 "This is my first post here, hi everyone.",
 "Bitcoin is going to the moon, buy now before it is too late.",
 "My kid lost his first tooth today and the tooth fairy was late.",
 "Spent the weekend painting the fence, my back hurts.",
 "Writing this while waiting for my flight home.",
 "The moon looked huge tonight, did anyone else see it?",
 "Just adopted a puppy, his name is Biscuit.",
 "I never know what to cook for dinner, any ideas?",
 "Finally finished the puzzle, a thousand pieces of blue sky.",
 "My neighbor keeps mowing his lawn at seven in the morning.",
 "Studying for finals, three exams in two days.",
 "Ok so the plot of that movie made no sense at all.",
 "Playing chess online every night, up to 1400 now.",
 "Wrong page, I meant to review the dentist across town.",
 "This review is for a different store, sorry.",
 "I lost my keys somewhere in the park yesterday, please call if found.",
 "Daylight saving time should be abolished.",
 "My favorite color is green and I love the spring.",
 "Meditation every morning has changed my life.",
 "Who else is watching the world cup this year?",
 "My car needs new tires but I can't afford them right now.",
 "Reading a great novel about a lighthouse keeper.",
 "Taxes are too high in this country.",
 "Woke up early to watch the sunrise at the beach.",
 "Does this app even work? Testing my account.",
 "I had a weird dream about flying whales last night.",
 "Our school's robotics team won the regional competition!",
 "Planting tomatoes and peppers in the backyard this weekend.",
 "Just a random thought: socks with sandals are fine.",
 "Cleaning out the garage and found my old comic books.",
 "Learning Spanish with an app, day 50 of my streak.",
 "Congrats to my best friend on her new job!",
 "The sunset over the lake tonight was amazing, posting from my couch.",
 "I've been feeling tired lately, need more sleep.",
 "My laptop keeps freezing, thinking about buying a new one.",
 "Cooking class at home with the kids, we made dumplings.",
 "Watching old cartoons on a Sunday morning.",
 "Knitting a scarf for my dad's birthday.",
 "Climate change is real and we need to act now.",
 "Yesterday I went to a concert downtown, the band was great.",
 "Went fishing with my uncle, caught nothing but had fun.",
 "Tried a new workout routine, planks are the worst.",
]
NONVISIT = [
 "Never been here but my friend says it is overpriced.",
 "Haven't visited yet, the photos look nice though.",
 "I called to ask about prices and they hung up on me. Won't bother going.",
 "Heard from coworkers that the service is awful, staying away.",
 "Drove past it today, looks closed and run down.",
 "I read online that they were shut down for health violations.",
 "Not been inside, but the parking lot always looks empty.",
 "My sister told me the owner is rude, so I will not go.",
 "Never went, the website was confusing.",
 "No idea what this place is, never been.",
 "Saw this place on TV once, never actually went.",
 "Planning to go next month, hope it is good.",
 "They never answered my emails about booking, so I went elsewhere.",
 "Someone at work said the food made them sick. Skipping it.",
 "I only looked at the menu online, prices are crazy.",
 "I wanted to go but it was closed when we got there, so I can't say.",
]
ADS = ["Visit www.{s}deals.com for 30% off everything!","Call 555-{n} today for a free quote!","Use promo code SAVE{p} at checkout on our website.","Follow us on Instagram @{s}official for giveaways!","Cheap followers and likes, DM me on WhatsApp +1 555 {n}","Earn $500 a day from home, click http://bit.ly/{s}{n}","Better prices at www.{s}outlet.com, don't shop here!"]
rows=[]
def place():
    p=R.choice(PLACES)
    return p
for i in range(90):
    p=place(); rows.append((onreview(p),p[0],p[1],1,0,0,0,0))
for t in OFF:
    for k in range(1):
        p=place(); rows.append((t, p[0] if R.random()<0.7 else "", p[1],0,0,1,0,0))
for t in NONVISIT:
    for k in range(2):
        p=place(); rows.append((t,p[0] if R.random()<0.7 else "",p[1],0,0,0,1,0))
for i in range(25):
    p=place(); s=p[0].lower().replace(" ","").replace("'","").replace("&","")[:10]
    ad=R.choice(ADS).format(s=s,n=f"{R.randint(0,9999):04d}",p=R.choice([10,20,25]))
    t = (onreview(p)+" "+ad) if R.random()<0.4 else ad
    rows.append((t,p[0],p[1],0,1,0,0,0))
# no-name copies of some relevant rows
for r in rows[:90:3]:
    rows.append((r[0],"",r[2])+r[3:])
w=csv.writer(sys.stdout); w.writerow(["text","business_name","category","relevant","ads","irrelevant","non_visit","spam"])
for r in rows: w.writerow(r)

# second set
R = random.Random(1717)
SHORT = ["Love this place!", "Great service and friendly staff.", "Best spot in town, hands down.", "Really enjoyed our time here.",
 "Nice view and a relaxing atmosphere.", "Terrible customer service, never again.", "Always a good experience.", "Clean, quiet and well run.",
 "Fantastic people working here.", "Overpriced and slow.", "Such a fun place to spend the afternoon.", "Highly recommend to anyone nearby.",
 "The staff went above and beyond for us.", "Not worth the money.", "Beautiful place, we will be back.", "Good prices, good people.",
 "They were so kind and patient with my kids.", "Way too crowded on weekends.", "Amazing experience from start to finish!", "Decent, nothing special.",
 "So glad we found this place on our trip.", "Rude employee at the counter today.", "My go-to place every week.", "Wonderful atmosphere, loved it."]
STORY = ["We booked online and everything was ready when we arrived. The whole family had a great time and the kids want to come back next summer.",
 "I have been a customer for three years. Last month they lost my paperwork and nobody called me back, so I am looking elsewhere now.",
 "Came here for my birthday with a group of friends. They found us a big table, checked on us often and even brought out a candle.",
 "First visit today. The person at the front explained everything clearly and I was in and out in twenty minutes.",
 "Signed up last spring. The first weeks were great, then they changed the schedule without telling anyone and charged me twice.",
 "My husband and I stopped on our way through town. Friendly welcome, fair prices and the place was spotless.",
 "Went back after a year and it has gone downhill. Long waits, broken stuff nobody fixed and the manager did not seem to care.",
 "The owner greeted us at the door and remembered us from last time. That kind of service is hard to find these days."]
rows=[]
for t in SHORT+STORY:
    p=R.choice(PLACES); rows.append((t,p[0] if R.random()<0.8 else "",p[1],1,0,0,0,0))
for r in rows: w.writerow(r)
